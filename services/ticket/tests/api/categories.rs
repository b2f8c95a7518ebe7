//! Categories: seeded defaults, sorted; admins manage them.

use helpdesk_proto::support::v1 as pb;
use tonic::Code;

use crate::helpers::*;

async fn names(client: &mut Categories, show_inactive: bool) -> Vec<String> {
    client
        .list_categories(pb::ListCategoriesRequest { show_inactive })
        .await
        .unwrap()
        .into_inner()
        .categories
        .into_iter()
        .map(|c| c.id)
        .collect()
}

#[tokio::test]
async fn the_original_categories_are_seeded_in_order() {
    let app = spawn().await;
    let ids = names(&mut app.alice().categories, false).await;
    assert_eq!(
        ids,
        [
            "ride_issue",
            "driver_issue",
            "payment_issue",
            "account",
            "vehicle",
            "lost_item",
            "gps_location",
            "other"
        ]
    );
    let ride = app
        .alice()
        .categories
        .get_category(pb::GetCategoryRequest {
            id: "ride_issue".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(ride.name, "Ride Issue");
}

#[tokio::test]
async fn admins_create_edit_and_retire_categories() {
    let app = spawn().await;
    let mut ada = app.ada().categories;
    let created = ada
        .create_category(pb::CreateCategoryRequest {
            category: Some(pb::Category {
                id: "safety".into(),
                name: "Safety".into(),
                description: "Safety concerns".into(),
                // Unset: a new category is active unless the admin says otherwise.
                active: None,
                sort_order: 5,
            }),
            request_id: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(created.id, "safety");
    assert_eq!(created.active, Some(true));
    assert_eq!(names(&mut app.alice().categories, false).await[0], "safety");
    expect_code(
        ada.create_category(pb::CreateCategoryRequest {
            category: Some(created.clone()),
            request_id: String::new(),
        })
        .await,
        Code::AlreadyExists,
    );

    // Retire it: hidden from users and from new tickets, still visible to staff.
    let retired = ada
        .update_category(pb::UpdateCategoryRequest {
            category: Some(pb::Category {
                id: "safety".into(),
                active: Some(false),
                name: "ignored".into(),
                ..Default::default()
            }),
            update_mask: mask(&["active"]),
            request_id: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(retired.active, Some(false));
    assert_eq!(retired.name, "Safety", "fields outside the mask are kept");
    assert!(
        !names(&mut app.alice().categories, true)
            .await
            .contains(&"safety".to_owned())
    );
    assert!(
        names(&mut app.sam().categories, true)
            .await
            .contains(&"safety".to_owned())
    );
    expect_code(
        app.alice()
            .categories
            .get_category(pb::GetCategoryRequest {
                id: "safety".into(),
            })
            .await,
        Code::NotFound,
    );
    let mut req = new_ticket("");
    req.category_id = "safety".into();
    expect_violation(app.alice().tickets.create_ticket(req).await, "category_id");
    expect_code(
        ada.update_category(pb::UpdateCategoryRequest {
            category: Some(pb::Category {
                id: "nope".into(),
                active: Some(true),
                ..Default::default()
            }),
            update_mask: mask(&["active"]),
            request_id: String::new(),
        })
        .await,
        Code::NotFound,
    );
}
